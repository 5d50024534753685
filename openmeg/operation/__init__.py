"""Operation domain (Y.2071 clause 8): control cycle, controllers, EMS, SCADA, MDMS, DR."""
