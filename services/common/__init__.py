"""What every hotlead service shares: Kafka settings and topics, logging, errors."""
