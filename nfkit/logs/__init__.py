"""The log half: netfilter LOG lines -> LogRecord -> attribution -> Summary -> report."""
