"""Running the pipeline: schema migrations, topics, status, the data quality report, the
catalog's docs."""
