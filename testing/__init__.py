"""Test kit shipped with honeychat: fakes of the outside world that speak real wire protocols."""
