"""Reading the log for people: a session's timeline (`replay`) and how memory is used over time
(`metrics`). Pure folds over events; the CLI and the dashboard print and draw them."""
