"""Where a scored run goes: the HTML report and MLflow."""
