"""Clients that speak the phone platforms' own streaming protocols, written from their specifications."""
