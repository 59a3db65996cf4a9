"""`xlray sweep` and `xlray report`: Ray Tune sweeps over models, languages and hyperparameters, tracked in MLflow."""
