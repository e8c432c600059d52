// Placeholder until this layer's issue fills it.
