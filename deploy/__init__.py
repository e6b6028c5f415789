"""Local stack (Kafka from Maven Central jars, Redis), the streamfold CLI, container files."""
