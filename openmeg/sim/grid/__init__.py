"""The simulated network: power balance, droop, islanding, power flow."""
