"""Template context every page shares."""

from django.utils.functional import SimpleLazyObject


def program(request):
    """The program's name for the page header and titles, read only when a template uses it."""

    def name():
        from rewards.selectors import program_settings

        return program_settings().name

    return {"program_name": SimpleLazyObject(name)}
