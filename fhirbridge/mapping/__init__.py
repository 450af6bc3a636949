"""The mapping layer: mapping-file schema, loader, engine, transforms and the sync plan."""
