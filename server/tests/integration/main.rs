//! Integration tests of `asset-catalog-server` with real components: the
//! conformance, bad-input and resumable-storage suites over the in-memory
//! store, the file store and a real S3 server (Garage), and the spawned
//! binary with systemd-style readiness over a real `NOTIFY_SOCKET`.

mod accounts;
mod auth;
mod bad_input;
mod binary;
mod conformance;
mod faults;
mod fleet;
mod fsck;
mod garage;
mod hardening;
mod index_suite;
mod inflight;
mod jobs;
mod jobs_fleet;
mod large;
mod outage;
mod pg_config;
mod protocol;
mod resumable;
mod scale;
mod support;
mod tls;
mod token_cli;
mod tus;
mod tus_sessions;
mod ui_browser;
mod ui_browser_tus;
mod ui_session;
mod ui_tus;

/// Instantiate every suite function for one backend.
macro_rules! suite {
    ($kind:expr) => {
        suite!(@tests $kind;
            conformance::upload_then_read_back,
            conformance::empty_file_round_trips,
            conformance::same_content_is_stored_once,
            conformance::concurrent_uploads_store_one_copy,
            conformance::hash_mismatch_stores_nothing,
            conformance::ranges_and_conditional_requests,
            conformance::check_sightings_and_delete,
            conformance::list_filters_and_pages,
            conformance::form_upload_computes_the_hash,
            conformance::reindex_rebuilds_from_the_bucket,
            bad_input::bad_hashes_and_unknown_routes,
            bad_input::path_tricks_are_rejected_or_kept_as_text,
            bad_input::malformed_json_and_huge_batches,
            bad_input::oversize_bodies_get_413,
            bad_input::truncated_bodies_store_nothing,
            large::large_upload_streams_through_multipart,
            resumable::parts_complete_into_the_object,
            resumable::abort_leaves_nothing,
            resumable::a_part_sent_again_replaces_the_first,
            resumable::another_server_completes_from_the_stored_ids,
            resumable::an_upload_in_progress_is_neither_content_nor_foreign,
            tus::a_session_in_parts_reports_its_committed_offset,
            tus::content_already_stored_needs_no_byte,
            tus::bad_input_is_refused_and_nothing_unverified_shows,
            tus_sessions::an_abandoned_session_expires,
        );
    };
    (@tests $kind:expr; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[actix_web::test]
            async fn $test() {
                crate::$module::$test($kind).await;
            }
        )*
    };
}

/// The index conformance suite on one backend.
macro_rules! index_suite {
    ($module:ident, $kind:expr) => {
        mod $module {
            use crate::index_suite::{self, Kind};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn assets_and_sightings() {
                index_suite::assets_and_sightings($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn listing() {
                index_suite::listing($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tokens() {
                index_suite::tokens($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn name_search() {
                index_suite::name_search($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tools() {
                index_suite::tools($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn job_queue() {
                index_suite::job_queue($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sessions() {
                index_suite::sessions($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn uploads() {
                index_suite::uploads($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn coordination() {
                index_suite::coordination($kind).await;
            }
        }
    };
}

index_suite!(index_sqlite, Kind::Sqlite);
index_suite!(index_postgres, Kind::Postgres);

mod background_jobs {
    use crate::support::Kind;

    #[actix_web::test]
    async fn metadata_and_thumbnails_from_real_files() {
        crate::jobs::metadata_and_thumbnails_from_real_files().await;
    }

    #[actix_web::test]
    async fn scrub_finds_corrupt_and_missing_objects_in_the_file_store() {
        crate::jobs::scrub_finds_corrupt_and_missing_objects(Kind::File).await;
    }

    #[actix_web::test]
    async fn scrub_finds_corrupt_and_missing_objects_in_garage() {
        crate::jobs::scrub_finds_corrupt_and_missing_objects(Kind::S3).await;
    }

    #[actix_web::test]
    async fn jobs_can_be_turned_off() {
        crate::jobs::jobs_can_be_turned_off().await;
    }

    #[actix_web::test]
    async fn jobs_yield_to_uploads() {
        crate::jobs::jobs_yield_to_uploads().await;
    }
}

mod fsck_runs {
    use crate::fsck::{self, On};

    #[actix_web::test]
    async fn sqlite_reports_then_repairs_each_damage() {
        fsck::reports_then_repairs_each_damage(On::Sqlite).await;
    }

    #[actix_web::test]
    async fn postgres_reports_then_repairs_each_damage() {
        fsck::reports_then_repairs_each_damage(On::Postgres).await;
    }

    #[actix_web::test]
    async fn the_binary_reports_repairs_and_exits_by_outcome() {
        fsck::the_binary_reports_repairs_and_exits_by_outcome().await;
    }

    #[actix_web::test]
    async fn a_fresh_object_without_a_row_is_left_alone() {
        fsck::a_fresh_object_without_a_row_is_left_alone().await;
    }

    #[actix_web::test]
    async fn size_mismatches_are_reported_never_repaired() {
        fsck::size_mismatches_are_reported_never_repaired().await;
    }
}

mod security {
    #[actix_web::test]
    async fn route_scope_matrix() {
        crate::auth::route_scope_matrix().await;
    }

    #[actix_web::test]
    async fn revocation_applies_to_the_next_request() {
        crate::auth::revocation_applies_to_the_next_request().await;
    }

    #[actix_web::test]
    async fn slow_senders_get_408_and_store_nothing() {
        crate::auth::slow_senders_get_408_and_store_nothing().await;
    }

    #[actix_web::test]
    async fn concurrent_upload_cap_gives_429() {
        crate::auth::concurrent_upload_cap_gives_429().await;
    }

    #[actix_web::test]
    async fn oversized_headers_get_431() {
        crate::auth::oversized_headers_get_431().await;
    }

    #[actix_web::test]
    async fn made_up_methods_and_paths_add_no_metric_series() {
        crate::hardening::made_up_methods_and_paths_add_no_metric_series().await;
    }

    #[actix_web::test]
    async fn readyz_tells_strangers_only_ready_or_not() {
        crate::hardening::readyz_tells_strangers_only_ready_or_not().await;
    }

    #[actix_web::test]
    async fn an_oversized_check_batch_is_refused_before_the_rest_is_parsed() {
        crate::hardening::an_oversized_check_batch_is_refused_before_the_rest_is_parsed().await;
    }

    #[actix_web::test]
    async fn trickling_uploads_hold_no_slot_a_normal_upload_needs() {
        crate::hardening::trickling_uploads_hold_no_slot_a_normal_upload_needs().await;
    }

    #[actix_web::test]
    async fn sightings_are_capped_and_paged() {
        crate::accounts::sightings_are_capped_and_paged().await;
    }

    #[actix_web::test]
    async fn every_write_names_its_token() {
        crate::accounts::every_write_names_its_token().await;
    }

    #[actix_web::test]
    async fn a_bound_token_speaks_only_for_its_client() {
        crate::accounts::a_bound_token_speaks_only_for_its_client().await;
    }

    #[actix_web::test]
    async fn an_upload_token_learns_only_that_content_exists() {
        crate::accounts::an_upload_token_learns_only_that_content_exists().await;
    }

    #[actix_web::test]
    async fn quotas_refuse_with_stable_codes() {
        crate::accounts::quotas_refuse_with_stable_codes().await;
    }

    #[actix_web::test]
    async fn a_trickling_form_upload_is_cut_like_a_put() {
        crate::hardening::a_trickling_form_upload_is_cut_like_a_put().await;
    }
}

mod memory {
    suite!(crate::support::Kind::Memory);
}

mod file {
    suite!(crate::support::Kind::File);

    #[actix_web::test]
    async fn storage_outage_gives_503_and_not_ready() {
        crate::outage::storage_outage_gives_503_and_not_ready(crate::support::Kind::File).await;
    }
}

mod s3 {
    suite!(crate::support::Kind::S3);

    #[actix_web::test]
    async fn storage_outage_gives_503_and_not_ready() {
        crate::outage::storage_outage_gives_503_and_not_ready(crate::support::Kind::S3).await;
    }

    #[actix_web::test]
    async fn storage_down_while_uploads_keep_arriving() {
        crate::outage::storage_down_while_uploads_keep_arriving(crate::support::Kind::S3).await;
    }

    #[actix_web::test]
    async fn an_outage_never_fills_the_upload_slots() {
        crate::outage::an_outage_never_fills_the_upload_slots(crate::support::Kind::S3).await;
    }

    #[actix_web::test]
    async fn a_storage_that_never_answers_is_cut_off() {
        crate::outage::a_storage_that_never_answers_is_cut_off(crate::support::Kind::S3).await;
    }

    #[actix_web::test]
    async fn missing_bucket_is_an_outage() {
        crate::outage::missing_bucket_is_an_outage(crate::support::Kind::S3).await;
    }

    #[actix_web::test]
    async fn aborted_uploads_leave_no_parts_in_s3() {
        crate::bad_input::aborted_uploads_leave_no_parts_in_s3(crate::support::Kind::S3).await;
    }
}
