"""Phone platforms' own sides of their streaming protocols, written from their published specifications."""
