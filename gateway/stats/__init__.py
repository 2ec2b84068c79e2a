"""Statistics (统计监测): what the window has handled, for the operator and the regulators."""
