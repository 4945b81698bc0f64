from django.contrib.auth import views as auth_views
from django.urls import path

from apps.accounts import views
from apps.accounts.forms import EmailAuthenticationForm

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("signup/", views.signup, name="signup"),
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=EmailAuthenticationForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password/reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password/reset/done/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password/reset/complete/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("account/", views.profile, name="profile"),
    path("orgs/", views.org_list, name="org-list"),
    path("invite/<str:token>/", views.invitation_accept, name="invitation-accept"),
]

org_urlpatterns = [
    path("", views.org_home, name="org-home"),
    path("members/", views.members, name="org-members"),
    path("members/invite/", views.invitation_create, name="org-invite"),
    path("members/<str:member_id>/role/", views.member_role, name="org-member-role"),
    path("members/<str:member_id>/limit/", views.member_limit, name="org-member-limit"),
    path("members/<str:member_id>/remove/", views.member_remove, name="org-member-remove"),
    path("invitations/<str:invitation_id>/revoke/", views.invitation_revoke, name="org-invitation-revoke"),
    path("leave/", views.org_leave, name="org-leave"),
    path("settings/", views.org_settings, name="org-settings"),
]
