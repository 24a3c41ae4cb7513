"""Face geometry: landmark detection, the LWM transform, and the eye-based crop."""
