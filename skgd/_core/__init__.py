"""The Cython first-order engine: data access, losses, schedules, update
rules and the epoch loop, one module each."""
