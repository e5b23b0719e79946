from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal import (
    alert_views,
    bulk_views,
    callback_views,
    export_views,
    grant_email_views,
    lead_actions,
    lead_views,
    overview,
    partner_views,
    search_views,
    site_views,
    views,
)

# The dashboard's own pages live under the "portal" namespace; login, logout, home and healthz
# keep their plain names because settings (LOGIN_URL, LOGIN_REDIRECT_URL) refer to them.
dashboard = (
    [
        path("alerts/", alert_views.alert_list, name="alert_list"),
        path("alerts/incidents/<uuid:public_id>/", alert_views.alert_incident, name="alert_incident"),
        path("alerts/channels/new/", alert_views.alert_channel_create, name="alert_channel_create"),
        path("alerts/channels/<uuid:public_id>/", alert_views.alert_channel, name="alert_channel"),
        path("alerts/channels/<uuid:public_id>/test/", alert_views.alert_channel_test, name="alert_channel_test"),
        path("alerts/channels/<uuid:public_id>/delete/", alert_views.alert_channel_delete, name="alert_channel_delete"),
        path("partners/", partner_views.partner_list, name="partner_list"),
        path("partners/new/", partner_views.partner_create, name="partner_create"),
        path("partners/<slug:slug>/", partner_views.partner_detail, name="partner_detail"),
        path("partners/<slug:slug>/edit/", partner_views.partner_edit, name="partner_edit"),
        path("partners/<slug:slug>/keys/", partner_views.api_key_issue, name="api_key_issue"),
        path("partners/<slug:slug>/keys/<str:key_id>/revoke/", partner_views.api_key_revoke, name="api_key_revoke"),
        path("sites/", site_views.site_index, name="site_index"),
        path("partners/<slug:slug>/sites/", site_views.site_list, name="site_list"),
        path("partners/<slug:slug>/sites/grant/", site_views.site_grant, name="site_grant"),
        path("partners/<slug:slug>/sites/<uuid:site_uuid>/", site_views.site_detail, name="site_detail"),
        path("partners/<slug:slug>/sites/<uuid:site_uuid>/revoke/", site_views.site_revoke, name="site_revoke"),
        path(
            "partners/<slug:slug>/sites/<uuid:site_uuid>/circuit/resume/",
            site_views.site_circuit_resume,
            name="site_circuit_resume",
        ),
        path(
            "partners/<slug:slug>/sites/<uuid:site_uuid>/held/release/",
            site_views.site_held_release,
            name="site_held_release",
        ),
        path(
            "partners/<slug:slug>/sites/<uuid:site_uuid>/held/cancel/",
            site_views.site_held_cancel,
            name="site_held_cancel",
        ),
        path("search/", search_views.search, name="search"),
        path("leads/", lead_views.lead_list, name="lead_list"),
        path("leads/export.csv", export_views.lead_export, name="lead_export"),
        path("partners/<slug:slug>/leads/<uuid:lead_id>/", lead_views.lead_detail, name="lead_detail"),
        path("partners/<slug:slug>/leads/<uuid:lead_id>/resend/", lead_actions.lead_resend, name="lead_resend"),
        path("partners/<slug:slug>/leads/<uuid:lead_id>/edit/", lead_actions.lead_edit, name="lead_edit"),
        path("partners/<slug:slug>/leads/<uuid:lead_id>/patch/", lead_actions.lead_patch_view, name="lead_patch"),
        path("partners/<slug:slug>/leads/<uuid:lead_id>/activity/", lead_actions.lead_activity, name="lead_activity"),
        path("partners/<slug:slug>/leads/<uuid:lead_id>/assign/", lead_actions.lead_assign_view, name="lead_assign"),
        path(
            "partners/<slug:slug>/leads/<uuid:lead_id>/deliveries/<uuid:delivery_id>/",
            lead_views.delivery_detail,
            name="delivery_detail",
        ),
        path(
            "partners/<slug:slug>/leads/<uuid:lead_id>/deliveries/<uuid:delivery_id>/cancel/",
            lead_actions.delivery_cancel_view,
            name="delivery_cancel",
        ),
        path(
            "partners/<slug:slug>/leads/<uuid:lead_id>/deliveries/<uuid:delivery_id>/retry/",
            lead_actions.delivery_retry_view,
            name="delivery_retry",
        ),
        path("bulk/", bulk_views.bulk_retry, name="bulk_retry"),
        path("bulk/<uuid:public_id>/", bulk_views.bulk_retry_detail, name="bulk_retry_detail"),
        path("bulk/<uuid:public_id>/progress", bulk_views.bulk_retry_progress, name="bulk_retry_progress"),
        path("audit/", views.audit_list, name="audit_list"),
        path("callbacks/", callback_views.callback_list, name="callback_list"),
        path("callbacks/<uuid:public_id>/", callback_views.callback_detail, name="callback_detail"),
        path("callbacks/<uuid:public_id>/reprocess/", callback_views.callback_reprocess, name="callback_reprocess"),
        path("grant-emails/", grant_email_views.grant_email_list, name="grant_email_list"),
        path("grant-emails/paste/", grant_email_views.grant_email_paste_view, name="grant_email_paste"),
        path("grant-emails/<uuid:public_id>/", grant_email_views.grant_email_detail, name="grant_email_detail"),
        path(
            "grant-emails/<uuid:public_id>/resolve/",
            grant_email_views.grant_email_resolve_view,
            name="grant_email_resolve",
        ),
        path(
            "grant-emails/<uuid:public_id>/dismiss/",
            grant_email_views.grant_email_dismiss_view,
            name="grant_email_dismiss",
        ),
        path(
            "grant-emails/<uuid:public_id>/reparse/",
            grant_email_views.grant_email_reparse_view,
            name="grant_email_reparse",
        ),
    ],
    "portal",
)

urlpatterns = [
    path("", overview.overview, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include(dashboard)),
]
