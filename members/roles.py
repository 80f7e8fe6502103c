"""Staff roles. Each app's data migration grants its own permissions to these groups."""

MARKETER = "Marketer"
ANALYST = "Analyst"
SUPPORT = "Support"
ALL_ROLES = (MARKETER, ANALYST, SUPPORT)


def grant(apps, role: str, codenames: list[str]) -> None:
    """Give a group permissions ('app_label.codename'), creating missing permissions first.

    Permissions are normally created after migrate; a data migration creates them itself.
    """
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=role)
    for dotted in codenames:
        app_label, codename = dotted.split(".")
        permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
        group.permissions.add(permission)
