"""The probe service: synthetic probe conversations on a schedule, their log, metrics and console (issue 16)."""
