"""What an audit gives out: the report (JSON), its HTML with the emotion plot, CSV, and the CLI's report files."""
