"""The scorer: rules-as-code lead scoring on faust."""
