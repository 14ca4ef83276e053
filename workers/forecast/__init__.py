"""Pure forecasting science (numpy/scipy only): schedules, laws, fitting, trajectories."""
