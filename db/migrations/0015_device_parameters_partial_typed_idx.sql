DROP INDEX "device_parameters_path_num_idx";--> statement-breakpoint
DROP INDEX "device_parameters_path_time_idx";--> statement-breakpoint
DROP INDEX "device_parameters_path_version_idx";--> statement-breakpoint
CREATE INDEX "device_parameters_path_num_idx" ON "device_parameters" USING btree ("path","value_num","device_id") WHERE "device_parameters"."value_num" is not null;--> statement-breakpoint
CREATE INDEX "device_parameters_path_time_idx" ON "device_parameters" USING btree ("path","value_time","device_id") WHERE "device_parameters"."value_time" is not null;--> statement-breakpoint
CREATE INDEX "device_parameters_path_version_idx" ON "device_parameters" USING btree ("path","version_key","device_id") WHERE "device_parameters"."version_key" is not null;