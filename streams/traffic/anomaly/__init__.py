"""Traffic anomalies: the rules that judge each camera-minute, the life of an alert, the state
the detector keeps and the baselines it judges against."""
