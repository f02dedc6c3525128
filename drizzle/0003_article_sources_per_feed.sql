DROP INDEX "article_sources_canonical_url_uq";--> statement-breakpoint
CREATE UNIQUE INDEX "article_sources_canonical_url_feed_uq" ON "article_sources" USING btree ("canonical_url","feed");--> statement-breakpoint
CREATE INDEX "articles_collected_at_idx" ON "articles" USING btree ("collected_at");