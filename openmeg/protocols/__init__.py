"""Protocol adapters only (MQTT, Modbus, OpenADR, NTP, TLS); no business rules here."""
