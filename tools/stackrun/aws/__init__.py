"""The AWS side: where a run goes, the state backend, the account baseline, tokens."""
