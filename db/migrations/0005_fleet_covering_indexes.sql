DROP INDEX "device_parameters_path_value_idx";--> statement-breakpoint
DROP INDEX "device_parameters_path_num_idx";--> statement-breakpoint
DROP INDEX "device_parameters_path_time_idx";--> statement-breakpoint
DROP INDEX "device_parameters_path_version_idx";--> statement-breakpoint
DROP INDEX "devices_product_class_version_idx";--> statement-breakpoint
DROP INDEX "devices_software_version_idx";--> statement-breakpoint
DROP INDEX "devices_software_version_key_idx";--> statement-breakpoint
DROP INDEX "devices_protocol_idx";--> statement-breakpoint
DROP INDEX "devices_region_idx";--> statement-breakpoint
DROP INDEX "devices_olt_pon_idx";--> statement-breakpoint
DROP INDEX "devices_last_contact_idx";--> statement-breakpoint
DROP INDEX "devices_interval_contact_idx";--> statement-breakpoint
CREATE INDEX "devices_product_class_sw_idx" ON "devices" USING btree ("product_class","software_version","id");--> statement-breakpoint
CREATE INDEX "device_parameters_path_value_idx" ON "device_parameters" USING btree ("path",left("value", 256),"device_id");--> statement-breakpoint
CREATE INDEX "device_parameters_path_num_idx" ON "device_parameters" USING btree ("path","value_num","device_id");--> statement-breakpoint
CREATE INDEX "device_parameters_path_time_idx" ON "device_parameters" USING btree ("path","value_time","device_id");--> statement-breakpoint
CREATE INDEX "device_parameters_path_version_idx" ON "device_parameters" USING btree ("path","version_key","device_id");--> statement-breakpoint
CREATE INDEX "devices_product_class_version_idx" ON "devices" USING btree ("product_class","software_version_key","id");--> statement-breakpoint
CREATE INDEX "devices_software_version_idx" ON "devices" USING btree ("software_version","id");--> statement-breakpoint
CREATE INDEX "devices_software_version_key_idx" ON "devices" USING btree ("software_version_key","id");--> statement-breakpoint
CREATE INDEX "devices_protocol_idx" ON "devices" USING btree ("protocol","id");--> statement-breakpoint
CREATE INDEX "devices_region_idx" ON "devices" USING btree ("region","id");--> statement-breakpoint
CREATE INDEX "devices_olt_pon_idx" ON "devices" USING btree ("olt","pon_port","id");--> statement-breakpoint
CREATE INDEX "devices_last_contact_idx" ON "devices" USING btree ("last_contact_at","id");--> statement-breakpoint
CREATE INDEX "devices_interval_contact_idx" ON "devices" USING btree ("periodic_inform_interval_s","last_contact_at","id");