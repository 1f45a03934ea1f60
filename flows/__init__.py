"""Contract code shared by the pipeline, the sensor and the lab.

``flows.schema`` owns the flow record's column names, order and types; ``flows.meter_csv`` reads
the meter's CSV with those types.  No dependency on MLflow, DVC or any other part of netsentry.
"""
