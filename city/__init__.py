"""What every component knows about the city and its deployment: the city profile, the
contract's topics, city time, the Kafka connection settings and the root error.

The bottom layer: it imports no other package of the project (tests/test_layers.py).
"""
