"""The role matrix: which roles may call each route (by its endpoint's name). A route missing
here is refused to everybody: deny by default.

- operator: everything, commands and configuration included;
- prosumer: their own premises (meters, devices, bills, trading, revenue) and the prices;
- service_provider: the MEG's operating data (site, devices, live values, history, prices),
  no customer's meter data or bills (privacy), no commands;
- auditor: reads everything, the audit log included; changes nothing.
"""

from __future__ import annotations

from openmeg.core.identity import Role

ALL: frozenset[Role] = frozenset({"operator", "prosumer", "service_provider", "auditor"})
READERS: frozenset[Role] = frozenset({"operator", "service_provider", "auditor"})
CUSTOMER_DATA: frozenset[Role] = frozenset({"operator", "prosumer", "auditor"})
OPERATOR: frozenset[Role] = frozenset({"operator"})
OVERSIGHT: frozenset[Role] = frozenset({"operator", "auditor"})

PREMISES: frozenset[Role] = frozenset({"operator", "prosumer"})

ROLE_MATRIX: dict[str, frozenset[Role]] = {
    "me": ALL,
    "services_list": PREMISES,  # a prosumer: their own premises' (the scope)
    "services_status": CUSTOMER_DATA,
    "services_subscribe": PREMISES,
    "services_unsubscribe": PREMISES,
    "site_summary": ALL,
    "devices_list": ALL,
    "device_detail": ALL,
    "live_snapshot": ALL,
    "point_history": ALL,
    "send_command": OPERATOR,
    "command_authorise": OPERATOR,
    "device_add_authorise": OPERATOR,
    "alarms_list": ALL,  # a prosumer: the alarms of their own devices
    "alarm_acknowledge": OPERATOR,
    "events_list": OVERSIGHT,
    "meters_list": CUSTOMER_DATA,
    "meter_readings": CUSTOMER_DATA,
    "meter_edit": OPERATOR,
    "bill_of": CUSTOMER_DATA,
    "basic_charge_of": CUSTOMER_DATA,
    "prices_between": ALL,
    "price_now": ALL,
    "trading_get": CUSTOMER_DATA,
    "trading_put": frozenset({"operator", "prosumer"}),
    "trading_delete": frozenset({"operator", "prosumer"}),
    "trading_accounts_of": CUSTOMER_DATA,
    "revenue_of": CUSTOMER_DATA,
    "market_settlement_of": CUSTOMER_DATA,
    "market_settled_days_of": CUSTOMER_DATA,
    "prosumer_now": CUSTOMER_DATA,
    "prosumer_trading_accounts": CUSTOMER_DATA,
    "audit_records": OVERSIGHT,
    "audit_check": OVERSIGHT,
    "users_list": OPERATOR,
    "user_create": OPERATOR,
    "network_get": ALL,
    "network_now": ALL,
    "energy_of": ALL,
    "point_detail": ALL,
    # a premises' building automation: the operator's and its own customer's
    "bas_points": CUSTOMER_DATA,
    "bas_command": frozenset({"operator", "prosumer"}),
    "bas_supply": CUSTOMER_DATA,
    "bas_findings": CUSTOMER_DATA,
    "bas_report": CUSTOMER_DATA,
}
