"""Small real HTTP services (market data, risk engine, order gateway), one replica per process.

Run one replica with ``python -m demo.services --service NAME --replica NAME --port N``.
"""
