"""Partners and their API keys: list, create, edit with write-only secrets, issue and revoke keys."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from core.access import acting_user, staff_required, superuser_required
from core.models import AuditEntry
from grants import rg_url, services
from grants.access import partner_or_404, partners_visible_to
from grants.audit import secret_fingerprint
from grants.encryption import decrypt, encrypt
from grants.models import ApiKey, Partner, Site
from portal.forms.partners import ApiKeyIssueForm, PartnerCreateForm, PartnerEditForm


@staff_required
def partner_list(request: HttpRequest) -> HttpResponse:
    partners = (
        partners_visible_to(request.user)
        .annotate(
            active_sites=Count("sites", filter=Q(sites__status=Site.Status.ACTIVE), distinct=True),
            usable_keys=Count("api_keys", filter=Q(api_keys__revoked_at__isnull=True), distinct=True),
        )
        .order_by("name")
    )  # Meta.ordering does not apply to aggregating queries
    return render(request, "portal/partner_list.html", {"partners": partners, "section": "partners"})


def _render_detail(request: HttpRequest, partner: Partner, key_form: ApiKeyIssueForm) -> HttpResponse:
    context = {
        "partner": partner,
        "section": "partners",
        "key_form": key_form,
        "api_keys": partner.api_keys.order_by("revoked_at", "-created"),
        "webhook_fingerprints": [secret_fingerprint(secret) for secret in partner.webhook_secrets],
        "api_url_refused": rg_url.refusal(partner.api_url()),
        "recent_audit": AuditEntry.objects.filter(partner=partner).select_related("actor")[:10],
    }
    return render(request, "portal/partner_detail.html", context)


@staff_required
def partner_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _render_detail(request, partner_or_404(request.user, slug), ApiKeyIssueForm())


@superuser_required
@sensitive_post_parameters("rg_password", "webhook_secret")
def partner_create(request: HttpRequest) -> HttpResponse:
    # Superusers only: a new partner has no staff yet, so nobody else could see what they made.
    form = PartnerCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            partner = services.partner_create(**form.cleaned_data, actor=acting_user(request))
        except ValidationError as error:
            _errors_onto(form, error)
        else:
            messages.success(request, f"Partner “{partner.name}” created.")
            return redirect("portal:partner_detail", slug=partner.slug)
    return render(request, "portal/partner_form.html", {"form": form, "section": "partners", "creating": True})


def _errors_onto(form: forms.BaseForm, error: ValidationError) -> None:
    """What the service refused, shown on the form: a partner of the same name saved meanwhile,
    or a field the model refuses."""
    for field, problems in error.message_dict.items():
        form.add_error(field if field in form.fields else None, problems)


@staff_required
@sensitive_post_parameters("rg_password", "new_webhook_secret")
def partner_edit(request: HttpRequest, slug: str) -> HttpResponse:
    partner = partner_or_404(request.user, slug)
    name_before = partner.name  # the form writes what it was sent into `partner`
    # Superusers only: the URL decides who receives the partner's RG password.
    form = PartnerEditForm(request.POST or None, instance=partner, may_change_api_url=request.user.is_superuser)
    if request.method == "POST" and form.is_valid():
        try:
            partner, changed = services.partner_edit(partner, **form.edit(), actor=acting_user(request))
        except ValidationError as error:
            _errors_onto(form, error)
        else:
            messages.success(request, "Partner saved." if changed else "Nothing changed.")
            return redirect("portal:partner_detail", slug=partner.slug)
    context = {"form": form, "partner": partner, "partner_name": name_before, "section": "partners"}
    return render(request, "portal/partner_form.html", context)


# Where a new key's secret waits for the one page that shows it (see `api_key_issue`).
ISSUED_KEY_SESSION = "portal.issued_api_key"


@staff_required
@require_http_methods(["GET", "POST"])
@never_cache
@sensitive_variables("secret")
def api_key_issue(request: HttpRequest, slug: str) -> HttpResponse:
    """POST issues a key and redirects; the GET after it shows the secret once.

    The secret waits in the session between the two requests and is popped when shown, so a
    reload of the page says it was already shown instead of issuing another live key.
    """
    partner = partner_or_404(request.user, slug)
    if request.method == "GET":
        return _api_key_issued(request, partner)
    form = ApiKeyIssueForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, partner, form)
    key, secret = services.api_key_issue(partner=partner, label=form.cleaned_data["label"], actor=acting_user(request))
    # Keyed by key id: two keys issued in two tabs each keep their secret until shown. Encrypted,
    # because sessions are rows in the database and no secret is stored there in clear.
    waiting = request.session.get(ISSUED_KEY_SESSION, {})
    request.session[ISSUED_KEY_SESSION] = {**waiting, key.key_id: {"partner": partner.pk, "secret": encrypt(secret)}}
    return redirect(f"{reverse('portal:api_key_issue', args=[partner.slug])}?{urlencode({'key': key.key_id})}")


@sensitive_variables("secret", "waiting")
def _api_key_issued(request: HttpRequest, partner: Partner) -> HttpResponse:
    """The page of a key just issued: its secret the first time, "already shown" after that."""
    key = ApiKey.objects.filter(partner=partner, key_id=request.GET.get("key", "")).first()
    if key is None:
        return redirect("portal:partner_detail", slug=partner.slug)
    waiting = request.session.get(ISSUED_KEY_SESSION, {})
    secret = ""
    if waiting.get(key.key_id, {}).get("partner") == partner.pk:
        secret = decrypt(waiting.pop(key.key_id)["secret"])
        if waiting:
            request.session[ISSUED_KEY_SESSION] = waiting  # reassigned, so the session is saved without it
        else:
            del request.session[ISSUED_KEY_SESSION]
    context = {"partner": partner, "key": key, "secret": secret, "section": "partners"}
    return render(request, "portal/api_key_issued.html", context)


@staff_required
@require_POST
def api_key_revoke(request: HttpRequest, slug: str, key_id: str) -> HttpResponse:
    partner = partner_or_404(request.user, slug)
    key = get_object_or_404(ApiKey, partner=partner, key_id=key_id)
    if key.is_revoked:
        messages.info(request, f"Key {key.key_id} was already revoked.")
    else:
        services.api_key_revoke(key=key, actor=acting_user(request))
        messages.success(request, f"Key {key.key_id} revoked: requests using it are now refused.")
    return redirect("portal:partner_detail", slug=partner.slug)
