"""The traffic stream: camera events into flow windows (flow.py), watched by its anomaly
detector (anomaly/), which sees it only through one hook."""
