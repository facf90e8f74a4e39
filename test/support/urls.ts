/** Where the integration tests find their services (overridable by environment). */
export type ServiceName = "mysql" | "pg" | "redis"

export const serviceUrls: Record<ServiceName, string> = {
  mysql: process.env.MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test",
  pg: process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test",
  redis: process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
}
