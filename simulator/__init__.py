"""The city simulator: realistic input events for the pipeline, produced to Kafka.

`sources` defines what an event source is (camera traffic today; payments and portal later),
`clock` maps wall time to city time, `traffic` generates camera.events, and `producer` paces
the sources against the clock and sends their events to the broker.
"""
