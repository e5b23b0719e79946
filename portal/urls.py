from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal.views import (
    alerts,
    audit,
    bulk,
    callbacks,
    export,
    grant_emails,
    health,
    lead_actions,
    leads,
    overview,
    partners,
    search,
    sites,
)

# The dashboard's own pages live under the "portal" namespace; login, logout, home and healthz
# keep their plain names because settings (LOGIN_URL, LOGIN_REDIRECT_URL) refer to them.
dashboard = (
    [
        path("alerts/", alerts.alert_list, name="alert_list"),
        path("alerts/incidents/<uuid:public_id>/", alerts.alert_incident, name="alert_incident"),
        path("alerts/channels/new/", alerts.alert_channel_create, name="alert_channel_create"),
        path("alerts/channels/<uuid:public_id>/", alerts.alert_channel, name="alert_channel"),
        path("alerts/channels/<uuid:public_id>/test/", alerts.alert_channel_test, name="alert_channel_test"),
        path("alerts/channels/<uuid:public_id>/delete/", alerts.alert_channel_delete, name="alert_channel_delete"),
        path("partners/", partners.partner_list, name="partner_list"),
        path("partners/new/", partners.partner_create, name="partner_create"),
        path("partners/<slug:slug>/", partners.partner_detail, name="partner_detail"),
        path("partners/<slug:slug>/edit/", partners.partner_edit, name="partner_edit"),
        path("partners/<slug:slug>/keys/", partners.api_key_issue, name="api_key_issue"),
        path("partners/<slug:slug>/keys/<str:key_id>/revoke/", partners.api_key_revoke, name="api_key_revoke"),
        path("sites/", sites.site_index, name="site_index"),
        path("partners/<slug:slug>/sites/", sites.site_list, name="site_list"),
        path("partners/<slug:slug>/sites/grant/", sites.site_grant, name="site_grant"),
        path("partners/<slug:slug>/sites/<uuid:site_uuid>/", sites.site_detail, name="site_detail"),
        path("partners/<slug:slug>/sites/<uuid:site_uuid>/revoke/", sites.site_revoke, name="site_revoke"),
        path(
            "partners/<slug:slug>/sites/<uuid:site_uuid>/circuit/resume/",
            sites.site_circuit_resume,
            name="site_circuit_resume",
        ),
        path(
            "partners/<slug:slug>/sites/<uuid:site_uuid>/held/release/",
            sites.site_held_release,
            name="site_held_release",
        ),
        path(
            "partners/<slug:slug>/sites/<uuid:site_uuid>/held/cancel/",
            sites.site_held_cancel,
            name="site_held_cancel",
        ),
        path("search/", search.search, name="search"),
        path("leads/", leads.lead_list, name="lead_list"),
        path("leads/export.csv", export.lead_export, name="lead_export"),
        path("partners/<slug:slug>/leads/<uuid:lead_id>/", leads.lead_detail, name="lead_detail"),
        path("partners/<slug:slug>/leads/<uuid:lead_id>/resend/", lead_actions.lead_resend, name="lead_resend"),
        path("partners/<slug:slug>/leads/<uuid:lead_id>/edit/", lead_actions.lead_edit, name="lead_edit"),
        path("partners/<slug:slug>/leads/<uuid:lead_id>/patch/", lead_actions.lead_patch_view, name="lead_patch"),
        path("partners/<slug:slug>/leads/<uuid:lead_id>/activity/", lead_actions.lead_activity, name="lead_activity"),
        path("partners/<slug:slug>/leads/<uuid:lead_id>/assign/", lead_actions.lead_assign_view, name="lead_assign"),
        path(
            "partners/<slug:slug>/leads/<uuid:lead_id>/deliveries/<uuid:delivery_id>/",
            leads.delivery_detail,
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
        path("bulk/", bulk.bulk_retry, name="bulk_retry"),
        path("bulk/<uuid:public_id>/", bulk.bulk_retry_detail, name="bulk_retry_detail"),
        path("bulk/<uuid:public_id>/progress", bulk.bulk_retry_progress, name="bulk_retry_progress"),
        path("audit/", audit.audit_list, name="audit_list"),
        path("callbacks/", callbacks.callback_list, name="callback_list"),
        path("callbacks/<uuid:public_id>/", callbacks.callback_detail, name="callback_detail"),
        path("callbacks/<uuid:public_id>/reprocess/", callbacks.callback_reprocess, name="callback_reprocess"),
        path("grant-emails/", grant_emails.grant_email_list, name="grant_email_list"),
        path("grant-emails/paste/", grant_emails.grant_email_paste_view, name="grant_email_paste"),
        path("grant-emails/<uuid:public_id>/", grant_emails.grant_email_detail, name="grant_email_detail"),
        path(
            "grant-emails/<uuid:public_id>/resolve/",
            grant_emails.grant_email_resolve_view,
            name="grant_email_resolve",
        ),
        path(
            "grant-emails/<uuid:public_id>/dismiss/",
            grant_emails.grant_email_dismiss_view,
            name="grant_email_dismiss",
        ),
        path(
            "grant-emails/<uuid:public_id>/reparse/",
            grant_emails.grant_email_reparse_view,
            name="grant_email_reparse",
        ),
    ],
    "portal",
)

urlpatterns = [
    path("", overview.overview, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include(dashboard)),
]
