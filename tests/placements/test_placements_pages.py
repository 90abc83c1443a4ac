"""Staff pages for placements (the servers silo tenants live on)."""
import re

import pytest

from portal.extensions import db
from portal.models import Placement
from tests.conftest import SECOND_SERVER_ENV
from tests.factories import csrf_token, sign_in_staff


def _post(client, url, data):
    data = dict(data, csrf_token=csrf_token(client.get(url).get_data(as_text=True)))
    return client.post(url, data=data)


def test_superadmin_registers_a_placement(client, factory, second_server):
    sign_in_staff(client, factory.staff("superadmin"))
    response = _post(client, "/admin/placements", {"name": "eu-2", "url_env": SECOND_SERVER_ENV, "capacity": "50"})
    assert response.status_code == 302
    page = client.get("/admin/placements").get_data(as_text=True)
    assert "eu-2" in page and f"${SECOND_SERVER_ENV}" in page
    assert db.session.query(Placement).filter_by(name="eu-2").one().capacity == 50


def test_bad_placement_input_is_shown_beside_the_field(client, factory):
    sign_in_staff(client, factory.staff("superadmin"))
    response = _post(client, "/admin/placements", {"name": "eu-3", "url_env": "NO_SUCH_VARIABLE_SET", "capacity": "5"})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "NO_SUCH_VARIABLE_SET is not set" in body and 'value="eu-3"' in body
    response = _post(client, "/admin/placements", {"name": "Bad Name", "url_env": "", "capacity": "5"})
    assert response.status_code == 400 and "a-z, 0-9 and hyphens" in response.get_data(as_text=True)
    assert db.session.query(Placement).filter(Placement.name.in_(["eu-3", "Bad Name"])).count() == 0


@pytest.mark.parametrize("capacity", ["abc", "0", "", "100001", "1.5"])
def test_placement_capacity_gets_one_precise_message(client, factory, capacity):
    # Issue 14, item 11: "abc" said "This field is required".
    sign_in_staff(client, factory.staff("superadmin"))
    response = _post(client, "/admin/placements", {"name": "eu-4", "url_env": "", "capacity": capacity})
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.findall(r'<p class="error" id="capacity-error">(.*?)</p>', body) == [
        "Enter a whole number of tenants from 1 to 100000."]
    assert 'value="eu-4"' in body
    assert db.session.query(Placement).filter_by(name="eu-4").count() == 0


def test_operator_may_not_register_placements(client, factory):
    sign_in_staff(client, factory.staff("operator"))
    assert client.get("/admin/placements").status_code == 200
    token = csrf_token(client.get("/admin/tenants").get_data(as_text=True))
    response = client.post("/admin/placements", data={"name": "x1", "capacity": "1", "csrf_token": token})
    assert response.status_code == 403
