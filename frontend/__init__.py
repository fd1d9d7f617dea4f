"""Pages people see: views, templates, static files and the TypeScript sources built by npm."""
