"""Examples of docs/how-to/step-up.md: sensitive actions ask for a recent sign-in."""
