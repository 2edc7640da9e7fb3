"""What ``fer_app.train`` calls: its settings, optimizer and schedule, mixup, the model files a
run starts from, checkpoints, distillation, the MPI launcher's parts, metrics, training figures,
and the tables the reports print."""
