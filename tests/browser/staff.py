"""What the browser tests share besides fixtures: the staff password and logging in."""

from playwright.sync_api import Page

PASSWORD = "correct-horse-battery-9"
RG_PASSWORD = "rg-password-acme"


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
