DROP INDEX "device_events_kind_at_idx";--> statement-breakpoint
CREATE INDEX "device_events_kind_at_device_idx" ON "device_events" USING btree ("kind","at","device_id");