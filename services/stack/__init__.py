"""Running the whole pipeline on one machine: a small process supervisor (`make run`)."""
