"""End-to-end tests of the web page (backend/static) in headless Chromium."""
