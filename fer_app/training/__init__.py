"""What ``fer_app.train`` calls: checkpoints, distillation, the MPI launcher's parts, metrics,
training figures, and the tables the reports print."""
