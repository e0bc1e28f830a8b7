package registry

import "slices"

// commonPorts are the usual ports of services people run on their own
// machines, in ascending order. The fallback from a suggested port skips
// them (see [Registry.ForwardPort]): asked for 5170, taken, a name gets
// 5171, never 5173, where the next `npm run dev` will want Vite.
//
// Sources: each project's documented default port (the PostgreSQL, MySQL,
// Redis, MongoDB, RabbitMQ, Kafka, Elasticsearch, Vite, Angular, Django,
// Flask, Rails, Jupyter and Prometheus manuals among them), cross-checked
// against IANA's registry where the port is registered there. A short list
// on purpose: the ports a developer is likely to be running now.
var commonPorts = [...]int{
	1025,  // Mailpit/MailHog SMTP
	1433,  // Microsoft SQL Server
	1521,  // Oracle Database
	1883,  // MQTT (Mosquitto)
	2181,  // ZooKeeper
	2375,  // Docker daemon (plain)
	2376,  // Docker daemon (TLS)
	3000,  // Rails, Express/Node, Next.js, Grafana
	3306,  // MySQL, MariaDB
	4000,  // Phoenix, Jekyll
	4200,  // Angular CLI
	4222,  // NATS
	4317,  // OpenTelemetry OTLP/gRPC
	4318,  // OpenTelemetry OTLP/HTTP
	5000,  // Flask, ASP.NET Core
	5173,  // Vite dev server
	5432,  // PostgreSQL
	5601,  // Kibana
	5672,  // RabbitMQ (AMQP)
	5984,  // CouchDB
	6006,  // Storybook
	6379,  // Redis, Valkey
	6443,  // Kubernetes API server
	7474,  // Neo4j HTTP
	7687,  // Neo4j Bolt
	8000,  // Django, uvicorn, python -m http.server
	8025,  // Mailpit/MailHog web
	8080,  // the generic HTTP alternate (Tomcat, many dev servers)
	8086,  // InfluxDB
	8123,  // ClickHouse HTTP
	8200,  // Vault
	8500,  // Consul
	8888,  // Jupyter
	9000,  // MinIO, ClickHouse native, PHP-FPM
	9042,  // Cassandra
	9090,  // Prometheus
	9092,  // Kafka
	9200,  // Elasticsearch, OpenSearch HTTP
	9229,  // Node.js inspector
	9300,  // Elasticsearch transport
	9411,  // Zipkin
	11211, // memcached
	11434, // Ollama
	15672, // RabbitMQ management
	16686, // Jaeger UI
	26257, // CockroachDB
	27017, // MongoDB
}

// isCommonPort reports whether port is the usual port of a common local
// service (see commonPorts).
func isCommonPort(port int) bool {
	_, found := slices.BinarySearch(commonPorts[:], port)
	return found
}
