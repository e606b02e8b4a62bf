"""Clients that stream a call the way a phone platform does, each written from that platform's specification."""
