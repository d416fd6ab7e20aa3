"""The extension's REST contract: reply models, the JSON layer both hosts share, error replies, schema."""
