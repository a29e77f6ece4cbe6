"""The project's detector served by the stock peers, each run in its own virtual environment by
`benchmarks/peers.py`: KServe's `ModelServer` and MLServer, written as their docs show."""
