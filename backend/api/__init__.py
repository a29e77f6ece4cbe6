"""HTTP layer: dependencies and thin routes that translate requests to ImageService calls."""
