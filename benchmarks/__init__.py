"""Benchmarks of the serving stack: Locust files, cold start, and the local suite (`run_local`)."""
